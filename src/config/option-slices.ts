/**
 * What each component is handed: the options whose table row names it (option-table.ts, appliesTo). Components
 * declare their options as such a slice and take it whole, so a new option reaches its component without a
 * hand-written mapping, and a component given a slice without a key it reads does not compile.
 */
import { OPTION_KEYS, OPTION_TABLE, type Component, type OptionKey } from './option-table.js';
import type { ServeOptions } from './options.js';

type AppliesTo<K extends OptionKey> = (typeof OPTION_TABLE)[K]['appliesTo'][number];

/** The options that configure component C. */
export type OptionSlice<C extends Component> = { readonly [K in OptionKey as C extends AppliesTo<K> ? K : never]: ServeOptions[K] };

/** The keys of component C's slice, in table order. */
export function sliceKeys(component: Component): OptionKey[] {
  return OPTION_KEYS.filter((key) => (OPTION_TABLE[key].appliesTo as readonly Component[]).includes(component));
}

/** Component C's options, frozen. */
export function sliceOf<C extends Component>(options: Readonly<ServeOptions>, component: C): OptionSlice<C> {
  return Object.freeze(Object.fromEntries(sliceKeys(component).map((key) => [key, options[key]]))) as OptionSlice<C>;
}
