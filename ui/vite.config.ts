import { defineConfig } from 'vitest/config';

// The API a development server proxies to: a running `seam serve`.
const seam = process.env.SEAM_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The bundle is committed and embedded in the binary: no source maps,
    // one chunk per entry so the embedded file list stays short.
    sourcemap: false,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      '/api': seam,
      '/metrics': seam,
    },
  },
  test: {
    include: ['test/unit/**/*.test.ts'],
  },
});
