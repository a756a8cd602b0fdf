import { CreatePerson1732780000000 } from './1732780000000-create-person';
import { CreateApiToken1732780000001 } from './1732780000001-create-api-token';

/** Every migration, oldest first; listed explicitly so the same code runs from src and dist. */
export const migrations = [CreatePerson1732780000000, CreateApiToken1732780000001];
