import pino, { type DestinationStream, type Logger } from 'pino';
import type { Config } from './config';

/** JSON logs. Authorization headers and tokens are redacted wherever they appear. */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'people-graph' },
      redact: {
        paths: [
          'authorization',
          'token',
          '*.authorization',
          '*.token',
          'req.headers.authorization',
          'headers.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
