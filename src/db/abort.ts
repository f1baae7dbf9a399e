// What the pool needs of an abort signal (pg-queuepool's AbortSignalLike): to ask whether it
// fired, and to be told when it does. An AbortSignal fits; so does ClientGone, which costs a
// request far less (an AbortController is an EventTarget, made and torn down for every request).
import type { AbortSignalLike } from 'pg-queuepool';

/** Fires once, when the HTTP client of a request goes away. */
export class ClientGone implements AbortSignalLike {
  aborted = false;
  private listeners: (() => void)[] | undefined;

  addEventListener (_type: 'abort', listener: () => void): void {
    (this.listeners ??= []).push(listener);
  }

  removeEventListener (_type: 'abort', listener: () => void): void {
    const i = this.listeners?.indexOf(listener) ?? -1;
    if (i >= 0) this.listeners!.splice(i, 1);
  }

  abort (): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const listener of listeners ?? []) listener();
  }
}
