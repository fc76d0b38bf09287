export { startOpenpiDoor, openpiToken } from './door.js';
export type { OpenpiDoor, OpenpiDoorDeps } from './door.js';
export { loadKeyMapping } from './key-mapping.js';
