import { timeoutError } from './errors';

/**
 * The time budget of one GraphQL operation (OPERATION_TIMEOUT_MS), shared by the HTTP handler,
 * which answers the client, and the database layer, which does the work.
 *
 * When the budget runs out, `signal` aborts: reads and writes that have not started refuse to run,
 * and a write whose statements ran but which has not committed rolls back. Whether the client is
 * then told TIMEOUT at once depends on one thing: has a write of this operation reached its
 * commit? A write claims its commit (`claimCommit`) just before COMMIT, synchronously, so the two
 * cannot interleave:
 * - nothing claimed: the `onExpired` listener runs and the handler answers 503 TIMEOUT. Nothing of
 *   the operation was or will be committed, so the client may safely retry.
 * - a commit claimed: the client is not told the operation failed, because part of it did not.
 *   The operation is answered normally once its commit settles; work it had not started yet fails
 *   with TIMEOUT field errors.
 */
export class OperationBudget {
  /** Made only when someone asks for the signal: most operations never do. */
  private controller?: AbortController;
  private expiredAlready = false;
  private readonly timer: NodeJS.Timeout;
  private commitClaimed = false;
  private expiredListener?: () => void;

  constructor(readonly timeoutMs: number) {
    this.timer = setTimeout(() => this.expire(), timeoutMs);
  }

  /**
   * Sets the one listener called when the budget runs out before any write of the operation
   * claimed its commit (called at once if that already happened): the handler that answers the
   * client. A callback, not a promise: every operation would pay for a promise that almost never
   * settles, and for racing it against the operation.
   */
  onExpired(listener: () => void): void {
    if (this.expiredAlready && !this.commitClaimed) listener();
    else this.expiredListener = listener;
  }

  /** Aborts when the budget has run out. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.expiredAlready) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** True once the budget has run out. */
  get ranOut(): boolean {
    return this.expiredAlready;
  }

  /** Throws the TIMEOUT error once the budget has run out. */
  throwIfExpired(): void {
    if (this.expiredAlready) throw this.timeoutError();
  }

  /** The field error of work refused because the budget ran out. */
  timeoutError(): Error {
    return timeoutError(this.timeoutMs);
  }

  /**
   * Called by a write right before it commits. False when the budget has run out: the write must
   * roll back. True: the operation will be answered with its result, even if that comes late.
   */
  claimCommit(): boolean {
    if (this.expiredAlready) return false;
    this.commitClaimed = true;
    return true;
  }

  /** The operation was answered: the timer is no longer needed. */
  dispose(): void {
    clearTimeout(this.timer);
  }

  private expire(): void {
    this.expiredAlready = true;
    this.controller?.abort();
    if (!this.commitClaimed) this.expiredListener?.();
  }
}
