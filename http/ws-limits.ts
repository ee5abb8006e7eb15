// WebSocket messages over the size limit. ws refuses them itself (maxPayload: the message is
// never buffered whole), but it closes the socket with 1009 and an empty reason and then
// emits an error that @fastify/websocket's default handler logs with a stack. Here the close
// carries Attune's code instead, 4413 (HTTP 413 in the 4000-4999 application range) with the
// reason "payload_too_large: …", and the refusal is logged at info. ws calls `close(1009)` on
// the socket from its receiver's error handler before emitting the error, so each socket's
// `close` maps that one call onto the coded close, after the coded error message (`payload_too_large`,
// reason `message_too_large`); every other close passes through.
import type { IncomingMessage } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { AttuneError } from '../lib/errors.js';
import { socketErrorMessage } from './errors.js';

/** Close code for a message over the size limit. */
export const WS_MESSAGE_TOO_LARGE = 4413;

/** ws's error code for a message over maxPayload (its close code is 1009). */
const WS_TOO_LARGE = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH';

export function messageTooLargeReason(maxBytes: number): string {
  return `payload_too_large: a message may be at most ${maxBytes} bytes`;
}

/** Listener for the ws server's 'connection' event (emitted before the route's handler runs). */
export function wsConnectionHook(maxBytes: number): (socket: WebSocket, req: IncomingMessage) => void {
  const reason = messageTooLargeReason(maxBytes);
  return (socket) => {
    const close = socket.close.bind(socket);
    socket.close = (code?: number, data?: string | Buffer) => {
      if (code !== 1009 || data !== undefined) return close(code, data);
      // As before every coded close (docs/websocket-protocols.md), the error message first; it went without one.
      if (socket.readyState === socket.OPEN) {
        const e = new AttuneError('payload_too_large', `a message may be at most ${maxBytes} bytes`, [{ reason: 'message_too_large' }]);
        socket.send(JSON.stringify(socketErrorMessage(e, null, Date.now())));
      }
      return close(WS_MESSAGE_TOO_LARGE, reason);
    };
  };
}

/** @fastify/websocket's errorHandler: a too-large message at info (its socket is already closing with 4413); anything else as the default does. */
export function wsErrorHandler(err: Error & { code?: string }, socket: WebSocket, request: FastifyRequest, _reply: FastifyReply): void {
  if (err.code === WS_TOO_LARGE) {
    request.log.info({ code: 'payload_too_large', reason: 'message_too_large', close_code: WS_MESSAGE_TOO_LARGE, msg_detail: err.message }, 'websocket message too large: socket closed');
    return;
  }
  request.log.error({ err }, 'websocket error');
  socket.terminate();
}
