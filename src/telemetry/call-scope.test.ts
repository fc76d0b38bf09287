import { describe, expect, it } from 'vitest';
import { InferenceError, InvalidArgumentError, OverloadedError, UnavailableError } from '../errors/index.js';
import { CallScope, currentCallScope, rejectReasonOf, runInCallScope } from './call-scope.js';

describe('call scope', () => {
  it('follows the call through its async work, and only it', async () => {
    const a = new CallScope();
    const b = new CallScope();
    await Promise.all([
      runInCallScope(a, async () => {
        await new Promise((r) => setTimeout(r, 5)); // a timer hop, which the scope must survive
        currentCallScope()?.setModel('m', 1);
      }),
      runInCallScope(b, async () => currentCallScope()?.setModel('n', 2)),
    ]);
    expect([a.model, a.version, b.model, b.version]).toEqual(['m', '1', 'n', '2']);
    expect(currentCallScope()).toBeUndefined();
  });

  it('names refusals by their domain reason; other errors are not refusals', () => {
    expect(rejectReasonOf(new OverloadedError('full', 'queue_full'))).toBe('queue_full');
    expect(rejectReasonOf(new InferenceError('x', { cause: new UnavailableError('draining') }))).toBe('unavailable');
    expect(rejectReasonOf(new InvalidArgumentError('bad'))).toBeUndefined();
    const s = new CallScope();
    s.failedWith(new InvalidArgumentError('bad'));
    s.failedWith(new OverloadedError('full', 'queue_full'));
    expect(s.rejectReason).toBe('queue_full');
  });
});
