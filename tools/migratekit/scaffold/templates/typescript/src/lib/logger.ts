import pino from 'pino';

export const logger = pino({ name: process.env.SERVICE_NAME ?? 'service' });
