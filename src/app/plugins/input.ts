// What the service accepts, in one place: JSON bodies only, exactly as sent (valid UTF-8, no NUL,
// no lone surrogate: text is stored as it came or refused, never silently changed), validated by
// each route's schema; numbers and booleans in the URL only in their plain decimal and true/false
// forms.
import { Ajv, type ValidateFunction } from 'ajv';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { BadInputError } from './errors.ts';

/** Bodies above this get 413: a todo is a few dozen bytes. */
export const BODY_LIMIT = 16 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Text PostgreSQL would refuse (NUL) or that UTF-8 cannot carry (half of a surrogate pair). */
const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first string in `value` (a key or a value) that cannot be stored as it is, with its path. */
function unstorable (value: unknown, path: string[] = []): { path: string; what: string } | undefined {
  if (typeof value === 'string') {
    const m = UNSTORABLE.exec(value);
    return m
      ? {
          path: path.join('.'),
          what: m[0] === '\0' ? 'a NUL character' : 'a lone UTF-16 surrogate (not valid Unicode)',
        }
      : undefined;
  }
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const bad = unstorable(k, path) ?? unstorable(v, [...path, k]);
      if (bad) return bad;
    }
  }
  return undefined;
}

/**
 * Plain decimal numbers only: Number() would also read "0x10", " 7", "+7", "7e0" and "" (as 0).
 * A value that is not one stays a string, and the schema then refuses it, naming the parameter.
 */
const PLAIN = { integer: /^-?\d+$/, number: /^-?\d+(\.\d+)?$/ };

function coerceText (
  schema: { properties?: Record<string, { type?: string }> },
  data: Record<string, unknown>
): void {
  for (const [key, raw] of Object.entries(data)) {
    const type = schema.properties?.[key]?.type;
    if (typeof raw !== 'string' || !type) continue;
    if ((type === 'integer' || type === 'number') && PLAIN[type].test(raw)) data[key] = Number(raw);
    else if (type === 'boolean' && (raw === 'true' || raw === 'false')) data[key] = raw === 'true';
  }
}

/**
 * Bodies are JSON, validated strictly ("5" is not a number); query strings and path parameters are text, read as above.
 */
function validatorCompiler () {
  const ajv = new Ajv({
    useDefaults: true,
    removeAdditional: false,
    allErrors: false,
    strict: false,
    coerceTypes: false,
  });
  return ({ schema, httpPart }: { schema: object; httpPart?: string }) => {
    const validate: ValidateFunction = ajv.compile(schema);
    if (httpPart !== 'querystring' && httpPart !== 'params') return validate;
    const text = (data: Record<string, unknown>) => {
      coerceText(schema, data);
      return validate(data);
    };
    return Object.defineProperty(text, 'errors', { get: () => validate.errors });
  };
}

export default fp(
  async (fastify: FastifyInstance) => {
    fastify.setValidatorCompiler(validatorCompiler());
    // JSON only: any other body is a 415, not a string for the schema to reject.
    fastify.removeContentTypeParser(['text/plain', 'application/json']);
    const parseJson = fastify.getDefaultJsonParser('error', 'error');
    fastify.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
      let text: string;
      try {
        text = utf8.decode(body as Buffer);
      } catch {
        return done(new BadInputError('the body is not valid UTF-8'), undefined);
      }
      parseJson(req, text, (err, value) => {
        if (err) return done(err, undefined);
        const bad = unstorable(value);
        done(
          bad
            ? new BadInputError(`body${bad.path ? `/${bad.path}` : ''} contains ${bad.what}`, bad.path || undefined)
            : null,
          value
        );
      });
    });
  },
  { name: 'input' }
);
