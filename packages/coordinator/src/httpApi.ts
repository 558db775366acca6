import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Coordinator } from './coordinator.js';
import type { AuthGate } from './authGate.js';

/** HTTP on the coordinator's port (everything that is not a WebSocket upgrade). */
export function createHttpHandler(_coordinator: Coordinator, _auth: AuthGate): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  };
}
