/** Messages between the SQLite store and its writer thread. */
import type { StoreBatch } from './store.js';

export interface WriterInit {
  readonly file: string;
  readonly ledgerRetention: number;
}

export type ToWriter = { readonly kind: 'write'; readonly id: number; readonly batch: StoreBatch } | { readonly kind: 'close'; readonly id: number };

export type FromWriter =
  | { readonly kind: 'written'; readonly id: number }
  | { readonly kind: 'failed'; readonly id: number; readonly message: string }
  | { readonly kind: 'closed'; readonly id: number };
