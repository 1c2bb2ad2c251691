/**
 * Every WGSL source under shaders/, keyed by its path there ('matmul.wgsl',
 * 'lib/activations.wgsl'), for the browser, which cannot read the package's files.
 *
 * This file is a stand-in: `shaderMapPlugin()` in src/browser/build.ts replaces its
 * contents at bundle time with the real map, so a rebuilt bundle always carries the
 * current shaders. Unbundled (e.g. imported under Node) the map is empty, and
 * createBrowserGpu() says how to fix that. Bundlers other than esbuild can pass the
 * map themselves: createBrowserGpu({ shaders }).
 */
export const SHADERS: Readonly<Record<string, string>> = {};
