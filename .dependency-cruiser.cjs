/**
 * The layering: schemas/ (contracts, no I/O) <- platform/ (ports and adapters) <- services/ <- app/
 * (composition root). Nothing in production code imports upward (tests may exercise several layers
 * together); services talk to each other only through schemas/ and platform/ ports. `npm run lint:layers` (part of `npm run lint` and of `npm test`) checks it.
 */
module.exports = {
  forbidden: [
    {
      name: 'schemas-import-nothing-above',
      comment: 'schemas/ holds contracts only: it may not depend on platform/, services/, app/ or simulations/.',
      severity: 'error',
      from: { path: '^schemas/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(platform|services|app|simulations)/' },
    },
    {
      name: 'platform-below-services',
      comment: 'platform/ holds ports and adapters: it may depend on schemas/ only.',
      severity: 'error',
      from: { path: '^platform/', pathNot: '\\.test\\.ts$' },
      to: { path: '^(services|app|simulations)/' },
    },
    {
      name: 'services-below-app',
      comment: 'services/ may not reach into the composition root (app/).',
      severity: 'error',
      from: { path: '^(services|simulations)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^app/' },
    },
    {
      name: 'the-api-reads-only-the-read-side',
      comment:
        'The API reaches other services only for their read side: the projector\'s views and queries and the signals transmitter\'s status.',
      severity: 'error',
      from: { path: '^services/api/', pathNot: '\\.test\\.ts$' },
      to: { path: '^services/', pathNot: '^services/(api|projector|signals)/' },
    },
    {
      name: 'only-the-api-reads-other-services',
      comment: 'Outside the API, a service reaches another only through schemas/ and platform/ ports.',
      severity: 'error',
      from: { path: '^services/(?!api/)([^/]+)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^services/', pathNot: '^services/$1/' },
    },
    {
      name: 'production-never-imports-test-code',
      comment: 'Test kits and fixtures live in test/; production code never imports them.',
      severity: 'error',
      from: { path: '^(schemas|platform|services|app|simulations)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^test/|\\.test\\.ts$' },
    },
    {
      name: 'no-import-cycle',
      comment: 'Modules that import each other (at run time) are one module in two files: merge or split them.',
      severity: 'error',
      from: { pathNot: '\\.test\\.ts$' },
      to: { circular: true },
    },
    {
      name: 'no-unresolvable-import',
      comment: 'An import that resolves to nothing is a typo or a file moved without its importers.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
