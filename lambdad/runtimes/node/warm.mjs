// Imported by a pre-started slot (index.js, awaitAssignment) before its function is known: the first import() of a
// file takes Node's ES module loader through resolution, format detection, loading and linking of a file: URL,
// each compiled on first use (~4 ms). Done here, a function whose handler is an ES module does not pay it in its
// cold start. Nothing to export: being imported is its purpose.
export {};
