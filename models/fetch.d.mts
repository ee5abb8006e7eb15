// Types for the parts of fetch.mjs (plain Node ESM, so it runs before any install) that tests use.
export declare function extractFromTar(tar: Buffer, wanted: Set<string>): Map<string, Buffer>;
