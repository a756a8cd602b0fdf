import 'reflect-metadata';
import { loadConfig } from './src/config';
import { createDataSource } from './src/db/data-source';

/**
 * The DataSource for the TypeORM CLI, built from the same validated configuration as the service,
 * e.g. `npx typeorm-ts-node-commonjs -d ormconfig.ts migration:show`.
 */
export default createDataSource(loadConfig().databaseUrl);
