export * from './capabilities.ts';
export * from './catalogue.ts';
export * from './detection.ts';
export * from './events.ts';
