import Fastify, { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from './database/types';

export function buildServer({ db }: { db: Kysely<Database> }): FastifyInstance {
  const server = Fastify({ logger: false });
  server.get('/healthz', async () => ({ status: 'ok' }));
  server.get('/accounts/:id', async (request, reply) => {
    const { id } = request.params as { id: string };
    const account = await db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
    return account ?? reply.code(404).send({ error: 'not found' });
  });
  return server;
}
