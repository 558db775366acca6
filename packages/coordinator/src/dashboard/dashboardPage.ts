import { createHash } from 'node:crypto';
import { dashboardClient } from './dashboardClient.js';

const SCRIPT = `(${dashboardClient.toString()})();`;

const STYLE = `
body { font: 14px system-ui, sans-serif; margin: 0; color: #1b1f24; background: #f6f8fa; }
header { display: flex; flex-wrap: wrap; gap: 4px 20px; padding: 10px 16px; background: #24292f; color: #fff; }
header b { font-weight: 600; color: #9ecbff; margin-right: 4px; }
main { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 16px; padding: 16px; }
section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 12px; }
h2 { font-size: 14px; margin: 0 0 8px; }
#loss { width: 100%; height: 320px; display: block; }
#samples { width: 280px; height: 280px; image-rendering: pixelated; background: #000; display: block; }
.legend span { margin-right: 12px; }
.d { color: #1f6feb; } .g { color: #d9480f; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #eaeef2; font-variant-numeric: tabular-nums; }
#workers-section { grid-column: 1 / -1; }
#message { color: #cf222e; }
`;

/** The live dashboard (GET /): one self-contained page, no external files, polling /status and /history. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ganfleet</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <span><b>run</b><span id="run">–</span></span>
  <span><b>state</b><span id="state">–</span></span>
  <span><b>step</b><span id="step">–</span></span>
  <span><b>round</b><span id="round">–</span></span>
  <span><b>phase</b><span id="phase">–</span></span>
  <span><b>rounds/s</b><span id="rate">–</span></span>
  <span><b>D loss</b><span id="lossD">–</span></span>
  <span><b>G loss</b><span id="lossG">–</span></span>
  <span><b>workers</b><span id="worker-count">–</span></span>
  <span id="message"></span>
</header>
<main>
  <section>
    <h2>Loss by round <span class="legend"><span class="d">&#9632; D</span><span class="g">&#9632; G</span></span></h2>
    <canvas id="loss" data-points="0"></canvas>
  </section>
  <section>
    <h2>Latest samples <small id="samples-step"></small></h2>
    <img id="samples" alt="latest sample grid">
  </section>
  <section id="workers-section">
    <h2>Workers</h2>
    <table>
      <thead><tr><th>id</th><th>backend</th><th>device</th><th>frames via</th><th>last compute</th><th>relay round</th><th>rounds</th><th>status</th></tr></thead>
      <tbody id="workers"></tbody>
    </table>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** Only this page's own script and style run, and it may only talk to the coordinator that served it. */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
