import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { NODE_FLAGS, buildProgram } from 'ganfleet';

/**
 * Docker, Kubernetes and systemd are not available here, so the deployment files are checked
 * statically: they parse, and every ganfleet command line in them is one the built CLI accepts.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const read = (path: string): string => readFileSync(join(DEPLOY, path), 'utf8');
const SUBCOMMANDS = ['train', 'coordinator', 'relay', 'worker', 'fetch', 'sample'];

interface Flag {
  takesValue: boolean;
  choices: readonly string[] | undefined;
}

/** The flags of a subcommand, read from the CLI's own commander definition. */
function flagsOf(command: string): Map<string, Flag> {
  const sub = buildProgram().commands.find((c) => c.name() === command);
  if (!sub) return new Map();
  return new Map(
    sub.options.filter((o) => o.long !== undefined).map((o) => [o.long as string, { takesValue: o.required || o.optional, choices: o.argChoices }]),
  );
}

/** Checks `args` (subcommand first) against the CLI: known subcommand and flags, values where needed, valid choices. */
function expectCli(args: readonly unknown[], where: string): void {
  const [command, ...rest] = args.map(String);
  expect(SUBCOMMANDS, `${where}: subcommand`).toContain(command);
  const flags = flagsOf(command as string);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    expect(arg, `${where}: ${arg} is not a flag`).toMatch(/^--/);
    const flag = flags.get(arg);
    expect(flag, `${where}: ganfleet ${command} has no ${arg}`).toBeDefined();
    if (!flag?.takesValue) continue;
    const value = rest[++i];
    expect(value, `${where}: ${arg} needs a value`).toBeDefined();
    expect(value, `${where}: ${arg} needs a value`).not.toMatch(/^--/);
    if (flag.choices && !value?.startsWith('${')) expect(flag.choices, `${where}: ${arg} ${value}`).toContain(value);
  }
}

/** The value of `--name` in a command line. */
const valueOf = (args: readonly unknown[], name: string): string | undefined => {
  const i = args.indexOf(name);
  return i < 0 ? undefined : String(args[i + 1]);
};

describe('the CLI check itself', () => {
  it("the bin and the bench run node with the same flags as the deploy files and ganfleet train's workers", () => {
    const shebang = read('../packages/cli/bin/ganfleet.js').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    // The bench's own process is a coordinator too.
    const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.bench).toContain(`node ${NODE_FLAGS.join(' ')} --import tsx bench/run.ts`);
  });

  it('rejects what the CLI would reject', () => {
    expect(() => expectCli(['worker', '--connect', 'ws://x:1', '--backend', 'webgpu'], 'ok')).not.toThrow();
    expect(() => expectCli(['wroker'], 'typo')).toThrow(/subcommand/);
    expect(() => expectCli(['worker', '--conect', 'ws://x:1'], 'typo')).toThrow(/no --conect/);
    expect(() => expectCli(['worker', '--connect'], 'missing')).toThrow(/needs a value/);
    expect(() => expectCli(['worker', '--backend', 'cuda'], 'choice')).toThrow(/--backend cuda/);
    expect(() => expectCli(['coordinator', '--exit-when-done', 'yes'], 'boolean')).toThrow(/yes is not a flag/);
  });
});

describe('Dockerfiles', () => {
  const instructions = (file: string) =>
    read(file)
      .replace(/\\\n/g, ' ')
      .split('\n')
      .filter((l) => /^[A-Z]+ /.test(l))
      .map((l) => ({ op: l.split(' ')[0] as string, arg: l.slice(l.indexOf(' ') + 1).trim() }));

  for (const file of ['Dockerfile', 'Dockerfile.gpu']) {
    it(`${file}: installs with npm ci from files that exist, and its entrypoint is the CLI`, () => {
      const ins = instructions(file);
      expect(ins.filter((i) => i.op === 'FROM').at(-1)?.arg).toBe('node:20-slim');
      expect(ins.some((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.arg))).toBe(true);
      for (const copy of ins.filter((i) => i.op === 'COPY' && !i.arg.startsWith('--from'))) {
        for (const src of copy.arg.split(/\s+/).slice(0, -1)) expect(existsSync(join(ROOT, src)), `${file}: COPY ${src}`).toBe(true);
      }
      const entrypoint = JSON.parse(ins.find((i) => i.op === 'ENTRYPOINT')?.arg ?? '[]') as string[];
      expect(entrypoint.slice(0, -1)).toEqual(['node', ...NODE_FLAGS]);
      expect(entrypoint.at(-1)).toBe('/app/packages/cli/bin/ganfleet.js');
      expect(existsSync(join(ROOT, 'packages/cli/bin/ganfleet.js'))).toBe(true);
      const cmd = JSON.parse(ins.find((i) => i.op === 'CMD')?.arg ?? '[]') as string[];
      if (cmd[0] !== '--help')
        expectCli(
          cmd.filter((a) => a !== '--help'),
          `${file} CMD`,
        );
      // The host's node_modules, dist and native addon build stay out: the image builds its own.
      const ignored = read(`${file}.dockerignore`).split('\n');
      for (const pattern of ['**/node_modules', '**/dist', '**/native/build']) expect(ignored, `${file}.dockerignore`).toContain(pattern);
    });
  }

  it('the GPU image has the Vulkan loader, the driver graphics capability and the optional WebGPU packages', () => {
    const gpu = read('Dockerfile.gpu');
    expect(gpu).toMatch(/apt-get install[^\n]*\blibvulkan1\b/);
    expect(gpu).toMatch(/NVIDIA_DRIVER_CAPABILITIES=\S*graphics/);
    expect(gpu).not.toMatch(/npm ci[^\n]*--omit=optional/);
    const root = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
    expect(Object.keys(root.optionalDependencies ?? {})).toEqual(expect.arrayContaining(['webgpu', '@tensorflow/tfjs-backend-webgpu']));
    expect(gpu).toMatch(/tfjs-node-gpu[\s\S]*CUDA 11\.2[\s\S]*cuDNN 8\.1/);
  });
});

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as {
    services: Record<string, { command: string[]; env_file: string; build: { context: string; dockerfile: string }; deploy?: Record<string, unknown> }>;
  };

  it('has a coordinator and workers whose commands the CLI accepts, workers pointing at the coordinator service', () => {
    const { coordinator, relay, 'worker-via-relay': viaRelay, ...workers } = compose.services;
    expect(coordinator).toBeDefined();
    expectCli(coordinator?.command ?? [], 'compose coordinator');
    expect(Object.keys(workers)).toEqual(['worker', 'worker-gpu']);
    // The relay profile: a relay joining the coordinator, workers joining the relay.
    expectCli(relay?.command ?? [], 'compose relay');
    expectCli(viaRelay?.command ?? [], 'compose worker-via-relay');
    expect(valueOf(relay?.command ?? [], '--connect')).toBe(`ws://coordinator:${valueOf(coordinator?.command ?? [], '--port')}`);
    expect(valueOf(viaRelay?.command ?? [], '--connect')).toBe(`ws://relay:${valueOf(relay?.command ?? [], '--port')}`);
    for (const [name, w] of Object.entries(workers)) {
      expectCli(w.command, `compose ${name}`);
      expect(valueOf(w.command, '--connect')).toBe(`ws://coordinator:${valueOf(coordinator?.command ?? [], '--port')}`);
    }
    expect(JSON.stringify(compose.services['worker-gpu']?.deploy)).toMatch(/"driver":"nvidia".*"capabilities":\["gpu"\]/);
  });

  it('takes the token from an env file whose example sets GANFLEET_TOKEN, which the CLI reads', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.env_file, name).toBe('ganfleet.env');
      expect(existsSync(join(DEPLOY, s.build.context, s.build.dockerfile)), `${name}: ${s.build.dockerfile}`).toBe(true);
    }
    expect(read('ganfleet.env.example')).toMatch(/^GANFLEET_TOKEN=/m);
    for (const command of ['coordinator', 'relay', 'worker']) {
      const token = buildProgram()
        .commands.find((c) => c.name() === command)
        ?.options.find((o) => o.long === '--token');
      expect(token?.envVar, command).toBe('GANFLEET_TOKEN');
    }
  });
});

describe('Kubernetes manifests', () => {
  type Doc = { kind: string; metadata: { name: string }; spec?: Record<string, unknown>; stringData?: Record<string, string> };
  const docs: Doc[] = readdirSync(join(DEPLOY, 'k8s'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) =>
      parseAllDocuments(read(join('k8s', f))).map((d) => {
        expect(d.errors, f).toEqual([]);
        return d.toJS() as Doc;
      }),
    );
  const byKind = (kind: string): Doc[] => docs.filter((d) => d.kind === kind);
  interface Container {
    args: string[];
    env?: { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
    ports?: { name: string; containerPort: number }[];
    resources?: { limits?: Record<string, unknown> };
  }
  const podOf = (d: Doc) => (d.spec as { template: { metadata: { labels: Record<string, string> }; spec: { containers: Container[] } } }).template;

  it('has the expected kinds', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['DaemonSet', 'Deployment', 'Job', 'PersistentVolumeClaim', 'Secret', 'Service', 'Service']);
  });

  it('runs command lines the CLI accepts, with the token from the Secret', () => {
    const secret = byKind('Secret')[0] as Doc;
    for (const d of [...byKind('Deployment'), ...byKind('Job'), ...byKind('DaemonSet')]) {
      for (const c of podOf(d).spec.containers) {
        expectCli(c.args, `${d.kind} ${d.metadata.name}`);
        const token = c.env?.find((e) => e.name === 'GANFLEET_TOKEN')?.valueFrom?.secretKeyRef;
        expect(token?.name, d.metadata.name).toBe(secret.metadata.name);
        expect(Object.keys(secret.stringData ?? {})).toContain(token?.key);
      }
    }
  });

  it('workers are an Indexed Job requesting nvidia.com/gpu and connecting to the coordinator Service', () => {
    const job = byKind('Job')[0] as Doc;
    expect(job.spec?.completionMode).toBe('Indexed');
    const worker = podOf(job).spec.containers[0] as Container;
    expect(Number(worker.resources?.limits?.['nvidia.com/gpu'])).toBeGreaterThanOrEqual(1);
    expect(valueOf(worker.args, '--backend')).toBe('webgpu');

    const service = byKind('Service').find((d) => d.metadata.name === 'ganfleet-coordinator') as Doc;
    const svc = service.spec as { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
    const coordinator = byKind('Deployment')[0] as Doc;
    const pod = podOf(coordinator);
    expect(pod.metadata.labels).toMatchObject(svc.selector);
    const c = pod.spec.containers[0] as Container;
    expect(c.ports?.find((p) => p.name === svc.ports[0]?.targetPort)?.containerPort).toBe(Number(valueOf(c.args, '--port')));
    expect(valueOf(worker.args, '--connect')).toBe(`ws://${service.metadata.name}:${svc.ports[0]?.port}`);
  });

  it('relays are a DaemonSet joining the coordinator Service, behind a node-local Service on their port', () => {
    const relays = byKind('DaemonSet')[0] as Doc;
    const relay = podOf(relays).spec.containers[0] as Container;
    expect(relay.args[0]).toBe('relay');
    const coordinatorService = byKind('Service').find((d) => d.metadata.name === 'ganfleet-coordinator') as Doc;
    const coordinatorPort = (coordinatorService.spec as { ports: { port: number }[] }).ports[0]?.port;
    expect(valueOf(relay.args, '--connect')).toBe(`ws://ganfleet-coordinator:${coordinatorPort}`);
    const service = byKind('Service').find((d) => d.metadata.name === 'ganfleet-relay') as Doc;
    const svc = service.spec as { internalTrafficPolicy: string; selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
    expect(svc.internalTrafficPolicy).toBe('Local');
    expect(podOf(relays).metadata.labels).toMatchObject(svc.selector);
    expect(relay.ports?.find((p) => p.name === svc.ports[0]?.targetPort)?.containerPort).toBe(Number(valueOf(relay.args, '--port')));
  });
});

describe('systemd units', () => {
  const unit = (file: string): Map<string, string[]> => {
    const keys = new Map<string, string[]>();
    for (const line of read(join('systemd', file)).split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (m?.[1] && m[2] !== undefined) keys.set(m[1], [...(keys.get(m[1]) ?? []), m[2]]);
    }
    return keys;
  };
  const env = read('systemd/ganfleet.env.example');

  for (const [file, command] of [
    ['ganfleet-coordinator.service', 'coordinator'],
    ['ganfleet-worker@.service', 'worker'],
  ] as const) {
    it(`${file}: ExecStart runs the CLI with real flags, variables from its environment`, () => {
      const u = unit(file);
      const exec = (u.get('ExecStart')?.[0] ?? '').split(/\s+/);
      const bin = exec.findIndex((a) => a.endsWith('/packages/cli/bin/ganfleet.js'));
      expect(bin, 'runs packages/cli/bin/ganfleet.js').toBeGreaterThan(0);
      expect(exec.slice(1, bin), 'node flags').toEqual(NODE_FLAGS);
      expect(exec.slice(bin + 1)[0]).toBe(command);
      expectCli(exec.slice(bin + 1), file);
      expect(u.get('EnvironmentFile')).toEqual(['/etc/ganfleet/ganfleet.env']);
      for (const [, name] of (u.get('ExecStart')?.[0] ?? '').matchAll(/\$\{(\w+)\}/g)) {
        const defined = new RegExp(`^#?${name}=`, 'm').test(env) || (u.get('Environment') ?? []).some((e) => e.startsWith(`${name}=`));
        expect(defined, `${file}: \${${name}}`).toBe(true);
      }
      expect(u.get('WantedBy')).toEqual(['multi-user.target']);
    });
  }

  it('the worker unit is a template', () => {
    expect(read('systemd/ganfleet-worker@.service')).toContain('%i');
    expect(env).toMatch(/^GANFLEET_TOKEN=/m);
  });
});
