import { loadSpecText } from '../../spec/load.js';
import { schemaDiagnostics } from '../../spec/schema.js';

/**
 * Which spec-language v2 constructs this hl7c understands. The importer writes a construct only
 * when the schema accepts it, and a `# TODO(import):` with a valid placeholder otherwise, so its
 * output validates on the hl7c that wrote it while the language grows (issue 13).
 */
export interface Features {
  channelSource: boolean;
  destinationTransform: boolean;
  destinationMap: boolean;
  destinationBody: boolean;
  database: boolean;
  smtp: boolean;
  httpContent: boolean;
  basicAuth: boolean;
  retryUnlimited: boolean;
  fileAppend: boolean;
  filePattern: boolean;
  filterAck: boolean;
  httpMethods: boolean;
  mapFormat: boolean;
  textEdits: boolean;
  deliveredStatus: boolean;
  answerAfter: boolean;
}

const HEAD = 'channel: probe\n';
const MLLP = 'source: { mllp: { port: 0 } }\n';

const PROBES: Record<keyof Features, string> = {
  channelSource: 'source: { channel: { input: hl7 } }\n',
  destinationTransform: MLLP + 'destinations: { a: { file: { dir: ./x }, transform: [ { set: { path: MSH-5, value: A } } ] } }\n',
  destinationMap: MLLP + 'destinations: { a: { file: { dir: ./x }, map: { a: { path: MSH-5 } } } }\n',
  destinationBody: MLLP + 'destinations: { a: { file: { dir: ./x }, body: "{{MSH-10}}" } }\n',
  database: MLLP + 'destinations: { a: { database: { url: "postgres://h/db", statement: "SELECT $1", params: [ { path: MSH-10 } ] } } }\n',
  smtp: MLLP + 'destinations: { a: { smtp: { host: h, port: 25, from: a@b.example, to: c@d.example, subject: s } } }\n',
  httpContent: 'source: { http: { port: 0, path: /x, content: json } }\n',
  basicAuth: 'source: { http: { port: 0, path: /x, basic_auth: { user: u, password: p } } }\n',
  retryUnlimited: MLLP + 'destinations: { a: { file: { dir: ./x }, retry: { attempts: unlimited } } }\n',
  fileAppend: MLLP + 'destinations: { a: { file: { dir: ./x, append: true } } }\n',
  filePattern: 'source: { file: { dir: ./x, pattern: "*.txt" } }\n',
  filterAck: MLLP + 'accept: [ { rule: r, if: { path: MSH-9, exists: true }, otherwise: filter, ack: AR } ]\n',
  httpMethods: MLLP + 'destinations: { a: { http: { url: "http://h/x", method: GET } } }\n',
  mapFormat: MLLP + 'map: { a: { path: PID-7, format: "YYYY-MM-DD" } }\ndestinations: { a: { file: { dir: ./x } } }\n',
  deliveredStatus: MLLP + 'destinations: { a: { http: { url: "http://h/x", delivered_status: [ 409 ] } } }\n',
  answerAfter: 'source: { mllp: { port: 0, answer_after: [ a ], answer_from: a } }\ndestinations: { a: { mllp: { host: h, port: 1 } } }\n',
  textEdits: MLLP + 'transform: [ { replace: { path: PID-5.1, pattern: a, with: b } }, { reformat_date: { path: PV1-44, format: YYYYMMDD } } ]\nmap: { a: { path: PID-5.1, replace: [ { pattern: a, with: b } ] } }\ndestinations: { a: { file: { dir: ./x } } }\n',
};

let detected: Features | undefined;

/** The constructs the installed schema accepts (probed once). */
export function detectFeatures(): Features {
  if (detected) return detected;
  const out = {} as Features;
  for (const [name, body] of Object.entries(PROBES) as Array<[keyof Features, string]>) {
    const { spec } = loadSpecText('probe.yaml', HEAD + body, {});
    out[name] = spec !== undefined && schemaDiagnostics(spec).length === 0;
  }
  return (detected = out);
}

/** Every construct on (the syntax of /work/SPEC-V2.md), or none: for tests of both paths. */
export function allFeatures(on: boolean): Features {
  return Object.fromEntries(Object.keys(PROBES).map((k) => [k, on])) as unknown as Features;
}
