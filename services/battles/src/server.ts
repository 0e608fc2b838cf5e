import Fastify, { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from './database/types';

export function buildServer({ db }: { db: Kysely<Database> }): FastifyInstance {
  const server = Fastify({ logger: false });
  server.get('/healthz', async () => ({ status: 'ok' }));
  server.get('/battles/recent', async () =>
    db.selectFrom('battles').selectAll().orderBy('started_at', 'desc').limit(50).execute(),
  );
  return server;
}
