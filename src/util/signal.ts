/**
 * A typed event with any number of listeners: how the core's modules tell each other what
 * happened without reaching into each other's fields. Listeners run synchronously, in the
 * order they were added.
 */
export class Signal<T> {
  private readonly listeners = new Set<(value: T) => void>();

  /** Adds a listener; the returned function removes it. */
  on(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(value: T): void {
    for (const listener of [...this.listeners]) listener(value);
  }
}
