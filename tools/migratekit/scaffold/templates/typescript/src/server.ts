import Fastify, { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Database } from './database/types';

export function buildServer({ db }: { db: Kysely<Database> }): FastifyInstance {
  const server = Fastify({ logger: false });
  server.get('/healthz', async () => {
    await sql`SELECT 1`.execute(db);
    return { status: 'ok' };
  });
  return server;
}
