import type { CoordinatorStatus } from '../coordinator.js';
import type { HistoryResponse } from '../httpApi.js';

/**
 * The dashboard's browser script. The coordinator embeds its compiled source in the page
 * (Function#toString), so it is type-checked with the rest but must not use anything from
 * outside its own body: only type imports, which vanish at compile time.
 */
export function dashboardClient(): void {
  const POLL_MS = 1000;
  const COLORS = { D: '#1f6feb', G: '#d9480f' } as const;
  const token = new URLSearchParams(location.search).get('token');
  // Relative URLs, with the page's own token passed on: works behind a path-prefix proxy too.
  const url = (path: string, params: Record<string, string> = {}): string => {
    const q = new URLSearchParams(params);
    if (token) q.set('token', token);
    const s = q.toString();
    return s ? `${path}?${s}` : path;
  };
  const byId = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
  const text = (id: string, value: string): void => void (byId(id).textContent = value);
  const canvas = byId<HTMLCanvasElement>('loss');
  const samples = byId<HTMLImageElement>('samples');
  let shownSamplesStep: number | undefined;
  let lastRate: { round: number; t: number } | undefined;

  const getJson = async <T>(path: string): Promise<T> => {
    const res = await fetch(url(path), { cache: 'no-store' });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}${res.status === 401 ? ' (open the page with ?token=...)' : ''}`);
    return (await res.json()) as T;
  };

  const fmt = (x: number | undefined, digits = 4): string => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

  const showStatus = (s: CoordinatorStatus): void => {
    text('run', `${s.runId} · ${s.preset}`);
    text('state', s.state);
    text('step', `${s.step} / ${s.steps}`);
    text('round', `${s.round} / ${s.totalRounds}`);
    text('phase', s.phase);
    const now = performance.now();
    if (lastRate && s.round > lastRate.round) text('rate', ((s.round - lastRate.round) / ((now - lastRate.t) / 1000)).toFixed(1));
    else if (s.state !== 'training') text('rate', '0');
    lastRate = { round: s.round, t: now };
    // Workers count as their slots: a relay stands for the workers below it.
    text('worker-count', `${s.workers.reduce((n, w) => n + w.slots, 0)} (min ${s.minWorkers})`);
    const kind = (w: { role: string; backend: string; slots: number }): string =>
      w.role === 'relay' ? `relay · ${w.slots} worker${w.slots === 1 ? '' : 's'}` : w.backend;
    const mb = (bytes: number): string => (bytes / 1e6).toFixed(2);
    // A relay's own side of its last round: arrival to reply, and the bytes to and from its members.
    const relayRound = (r: (typeof s.workers)[number]['relay']): string =>
      r ? `${r.roundMs.toFixed(1)} ms · ${mb(r.bytesOut)} MB out, ${mb(r.bytesIn)} MB in` : '';
    const rows: string[][] = [];
    for (const w of s.workers) {
      rows.push([w.id, kind(w), w.device, w.transport, `${w.lastComputeMs.toFixed(1)} ms`, relayRound(w.relay), String(w.rounds), w.status]);
      // A relay's tree, indented below it: what it reports of its members, whose ids are its own (hence the path).
      const walk = (nodes: NonNullable<(typeof w)['children']>, depth: number, path: string): void => {
        for (const n of nodes) {
          rows.push([`${'\u00a0\u00a0'.repeat(depth)}└ ${path}/${n.id}`, kind(n), '', '', '', '', '', '']);
          walk(n.children ?? [], depth + 1, `${path}/${n.id}`);
        }
      };
      walk(w.children ?? [], 1, w.id);
    }
    const body = byId<HTMLTableSectionElement>('workers');
    // textContent only: backend and device strings come from the workers.
    body.replaceChildren(
      ...rows.map((cells) => {
        const tr = document.createElement('tr');
        for (const v of cells) {
          const td = document.createElement('td');
          td.textContent = v;
          tr.append(td);
        }
        return tr;
      }),
    );
  };

  const showSamples = (step: number | null): void => {
    if (step === null || step === shownSamplesStep) return;
    shownSamplesStep = step;
    // The step in the URL busts the browser cache when a new grid is written.
    samples.src = url('samples/latest.png', { step: String(step) });
    text('samples-step', `step ${step}`);
  };

  const draw = (h: HistoryResponse): void => {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const ht = canvas.clientHeight;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(ht * dpr);
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
    ctx.scale(dpr, dpr);
    ctx.clearRect(0, 0, w, ht);
    const all = [...h.D, ...h.G];
    canvas.dataset.points = String(all.length);
    text('lossD', fmt(h.D.at(-1)?.[1]));
    text('lossG', fmt(h.G.at(-1)?.[1]));
    const pad = { l: 48, r: 12, t: 12, b: 28 };
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#666';
    if (all.length === 0) {
      ctx.fillText('no rounds yet', pad.l, pad.t + 14);
      return;
    }
    const xs = all.map((p) => p[0]);
    const ys = all.map((p) => p[1]).filter(Number.isFinite);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs, Math.min(...xs) + 1)];
    let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
    if (y1 - y0 < 1e-6) [y0, y1] = [y0 - 0.5, y1 + 0.5];
    const px = (x: number): number => pad.l + ((x - x0) / (x1 - x0)) * (w - pad.l - pad.r);
    const py = (y: number): number => pad.t + (1 - (y - y0) / (y1 - y0)) * (ht - pad.t - pad.b);
    ctx.strokeStyle = '#ddd';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      ctx.moveTo(pad.l, py(y));
      ctx.lineTo(w - pad.r, py(y));
      ctx.fillText(y.toFixed(2), 4, py(y) + 4);
    }
    ctx.stroke();
    ctx.fillText(`round ${x0}`, pad.l, ht - 8);
    const right = `round ${x1}`;
    ctx.fillText(right, w - pad.r - ctx.measureText(right).width, ht - 8);
    for (const phase of ['D', 'G'] as const) {
      ctx.strokeStyle = COLORS[phase];
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      h[phase].forEach(([x, y], i) => (i === 0 ? ctx.moveTo(px(x), py(y)) : ctx.lineTo(px(x), py(y))));
      ctx.stroke();
    }
  };

  const poll = async (): Promise<void> => {
    try {
      const [status, history] = await Promise.all([getJson<CoordinatorStatus>('status'), getJson<HistoryResponse>('history')]);
      showStatus(status);
      draw(history);
      showSamples(history.samplesStep);
      text('message', '');
    } catch (err) {
      text('message', `not updating: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      setTimeout(() => void poll(), POLL_MS);
    }
  };
  void poll();
}
