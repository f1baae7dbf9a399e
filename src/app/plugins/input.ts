// What the service accepts: JSON bodies only, validated by each route's schema.
import { Ajv, type Options as AjvOptions } from 'ajv';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Bodies above this get 413: a todo is a few dozen bytes. */
export const BODY_LIMIT = 16 * 1024;

/**
 * Bodies are validated strictly (JSON has types: "5" is not a number); query strings and path
 * parameters are text, so they are coerced ("?limit=5" is the number 5).
 */
function validatorCompiler () {
  const common: AjvOptions = { useDefaults: true, removeAdditional: false, allErrors: false, strict: false };
  const strictAjv = new Ajv({ ...common, coerceTypes: false });
  const textAjv = new Ajv({ ...common, coerceTypes: 'array' });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) =>
    (httpPart === 'body' ? strictAjv : textAjv).compile(schema);
}

export default fp(async (fastify: FastifyInstance) => {
  fastify.setValidatorCompiler(validatorCompiler());
  // JSON only: any other body is a 415, not a string for the schema to reject.
  fastify.removeContentTypeParser(['text/plain']);
}, { name: 'input' });
