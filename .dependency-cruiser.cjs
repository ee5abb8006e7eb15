// The layers of Attune, written as rules (`npm run lint:deps`; CI runs it). Dependencies point
// one way, from the composition root down:
//
//   cli/                          wires everything (the only folder that may import any other)
//   api/   ingest/                routes; never import each other, nor pipelines/ or cli/
//   http/                         Fastify plumbing both of them share (auth, errors, live hub)
//   pipelines/                    pure DSP plus the workers that read the bus and write through store/
//   models/                       ONNX model files and their loader
//   store/   bus/   schemas/      ClickHouse/Postgres, the bus, Avro records and the codec
//   simulator/                    simulated devices for `attune all --simulate` (talks HTTP only)
//   lib/                          config, logging, errors, the principal: imports nothing of ours
//   examples/                     standalone programs for users (a webhook receiver): import nothing
//                                 of Attune; only their tests do
//
// Test files (*.test.ts, *.test-util.ts, *.contract.ts), benchmarks (*.bench.ts, bench/),
// scripts/ and test/ are tooling: product code may not import them, and they are
// held to fewer rules (a test may start the whole of Attune through cli/).
/* eslint-disable */
const TOOLING = '(\\.test\\.ts|\\.test-util\\.ts|\\.contract\\.ts|\\.bench\\.ts)$|^(bench|scripts|test)/';

/** A rule forbidding product files under `from` to import anything under the folders `to`. */
function layer(name, from, to, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: `^${from}/`, pathNot: TOOLING },
    to: { path: `^(${to.join('|')})/` },
  };
}

module.exports = {
  forbidden: [
    layer('lib-is-the-bottom', 'lib', ['schemas', 'store', 'bus', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli'], 'lib/ imports nothing of Attune but lib/.'),
    layer('simulator-is-a-client', 'simulator', ['schemas', 'store', 'bus', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli'], 'The simulator is a client of the HTTP API, like a device.'),
    layer('schemas-below-all', 'schemas', ['store', 'bus', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli'], 'schemas/ (Avro, record types, codec) sits at the bottom with lib/.'),
    layer('bus-below-pipelines', 'bus', ['store', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli'], 'bus/ knows topics and records, nothing above.'),
    layer('store-below-pipelines', 'store', ['bus', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli'], 'store/ (ClickHouse, Postgres, repositories) knows records, nothing above.'),
    layer('models-below-pipelines', 'models', ['store', 'bus', 'pipelines', 'http', 'api', 'ingest', 'cli'], 'models/ loads ONNX files; the pipelines use it.'),
    layer('pipelines-below-http', 'pipelines', ['http', 'api', 'ingest', 'cli'], 'Workers read the bus and write through store/; they never import the HTTP layers.'),
    layer('http-below-routes', 'http', ['pipelines', 'api', 'ingest', 'cli'], 'http/ is what api/ and ingest/ share; it knows neither.'),
    layer('api-not-ingest', 'api', ['ingest', 'pipelines', 'models', 'cli'], 'api/ and ingest/ never import each other; cli/ composes them.'),
    layer('ingest-not-api', 'ingest', ['api', 'pipelines', 'models', 'cli'], 'api/ and ingest/ never import each other; cli/ composes them.'),
    layer('examples-standalone', 'examples', ['lib', 'schemas', 'store', 'bus', 'models', 'pipelines', 'http', 'api', 'ingest', 'cli', 'simulator'], 'An example is a user\'s program: it runs with Node alone, copied anywhere.'),
    {
      name: 'known-folders',
      comment: 'Imports reach only folders with a place in the layers above: a new folder needs its rule first.',
      severity: 'error',
      from: {},
      to: { pathNot: '^(lib|schemas|store|bus|models|pipelines|http|api|ingest|cli|simulator|infra|bench|scripts|test|examples)/|(^|/)node_modules/', dependencyTypesNot: ['core'] },
    },
    {
      name: 'native-modules-on-demand',
      comment:
        'chDB, PGlite, pg and onnxruntime load only in the process that uses them (issue 8): import them with import() where they are needed; a type-only import is fine.',
      severity: 'error',
      from: { path: '^(lib|schemas|store|bus|models|pipelines|http|api|ingest|cli|simulator)/', pathNot: TOOLING },
      to: { path: '(^|/)node_modules/(chdb|@electric-sql/pglite|pg|onnxruntime-node)/', dynamic: false, dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'product-not-tooling',
      comment: 'Product code never imports tests, test utilities, benchmarks or scripts (they are not in dist/).',
      severity: 'error',
      from: { path: '^(lib|schemas|store|bus|models|pipelines|http|api|ingest|cli|simulator)/', pathNot: TOOLING },
      to: { path: TOOLING },
    },
    {
      name: 'no-circular',
      comment: 'A cycle makes load order matter and hides which module owns what.',
      severity: 'error',
      from: { pathNot: TOOLING },
      to: { circular: true, pathNot: TOOLING },
    },
    {
      name: 'product-not-dev-deps',
      comment: 'dist/ runs with production dependencies only.',
      severity: 'error',
      from: { path: '^(lib|schemas|store|bus|models|pipelines|http|api|ingest|cli|simulator)/', pathNot: TOOLING },
      to: { dependencyTypes: ['npm-dev'] },
    },
    {
      name: 'no-unresolvable',
      comment: 'An import that resolves to nothing fails at run time.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|data|models/files)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.mjs', '.js', '.d.ts', '.json'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
