import { defineConfig } from 'vite';

// The console is plain React + TypeScript; Vite compiles the JSX itself (automatic runtime,
// from tsconfig's "jsx"), so no framework plugin is needed. `npm run dev -w @pallas/console`
// proxies the API to a manager on the default port.
export default defineConfig({
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
