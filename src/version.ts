import pkg from '../package.json' with { type: 'json' };

/** The package version, recorded in every output file. */
export const VERSION: string = pkg.version;
