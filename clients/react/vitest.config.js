import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.{js,jsx}'],
    // The live server takes a few seconds to start.
    hookTimeout: 60000,
    testTimeout: 30000,
    // One file at a time: each starts its own server.
    fileParallelism: false,
  },
})
