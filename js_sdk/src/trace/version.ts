// The scope version of the spans the plugin records (package.json's version).
export const VERSION = '0.1.0'
