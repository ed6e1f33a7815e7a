// A small event emitter that works the same in browsers and Node: a
// listener that throws never breaks the emitter's caller (the socket's
// message handler); its error is reported through `error` instead.

/** Named events with listeners. */
export class Emitter {
  constructor() {
    /** @type {Map<string, Function[]>} */
    this.listeners = new Map();
  }

  /**
   * Calls `fn` on every `name` event; returns a function that removes it.
   * @param {string} name
   * @param {Function} fn
   */
  on(name, fn) {
    const list = this.listeners.get(name);
    if (list) list.push(fn);
    else this.listeners.set(name, [fn]);
    return () => this.off(name, fn);
  }

  /** Calls `fn` on the next `name` event only. */
  once(name, fn) {
    const off = this.on(name, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /** Removes a listener. */
  off(name, fn) {
    const list = this.listeners.get(name);
    if (!list) return;
    const i = list.findIndex((l) => l === fn);
    if (i >= 0) list.splice(i, 1);
  }

  /** Whether `name` has listeners. */
  listens(name) {
    return (this.listeners.get(name)?.length ?? 0) > 0;
  }

  /**
   * Calls every listener of `name` with `value`. A listener that throws is
   * reported as an `error` event (or, for `error` listeners, on the console).
   */
  emit(name, value) {
    const list = this.listeners.get(name);
    if (!list || list.length === 0) {
      if (name === "error") console.warn("tickforge:", value);
      return;
    }
    for (const fn of list.slice()) {
      try {
        fn(value);
      } catch (e) {
        if (name === "error") console.error("tickforge: an error listener threw:", e);
        else this.emit("error", e);
      }
    }
  }
}
