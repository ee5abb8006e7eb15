// A WebSocket client that completes the handshake and then never reads a byte: the slow
// consumer the live hubs must drop without stalling anyone else.
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';

export async function stalledClient(baseUrl: string, path: string): Promise<Socket> {
  const url = new URL(baseUrl);
  const sock = connect(Number(url.port), url.hostname);
  await new Promise((r) => sock.once('connect', r));
  sock.write(
    `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  await new Promise<void>((resolve) => sock.once('data', () => resolve()));
  sock.pause();
  return sock;
}
