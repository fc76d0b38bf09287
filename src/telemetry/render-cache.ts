/**
 * A rendering that is costly and asked for by anyone who can reach a port (the Prometheus text of `/metrics`,
 * rendered on the event loop that also serves gRPC): rendered at most once per `maxAgeMs`, and every request
 * that arrives while a rendering runs shares it. A scrape flood then costs the event loop one rendering per
 * interval, whatever the request rate. Pure but for the render function; the clock is injected.
 */
export class RenderCache<T> {
  private last: { readonly value: T; readonly at: number } | undefined;
  private running: Promise<T> | undefined;

  constructor(
    private readonly render: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly now: () => number,
  ) {}

  /** The last rendering if younger than maxAgeMs, else the one running, else a new one. A failed rendering is not kept. */
  get(): Promise<T> {
    const last = this.last;
    if (last && this.now() - last.at < this.maxAgeMs) return Promise.resolve(last.value);
    if (this.running) return this.running;
    // Aged from when it started: what it shows is the state at that moment.
    const startedAt = this.now();
    const running = this.render().then(
      (value) => {
        this.last = { value, at: startedAt };
        this.running = undefined;
        return value;
      },
      (err: unknown) => {
        this.running = undefined;
        throw err;
      },
    );
    this.running = running;
    return running;
  }
}
