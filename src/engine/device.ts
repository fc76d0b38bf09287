/** The execution providers a model version can run on. */
export type Device = 'cpu' | 'webgpu' | 'cuda';
