import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'ganfleet-run/**', '.gpu/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        Buffer: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        performance: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // `import { type X }` alone still loads the module (verbatimModuleSyntax): `import type` does not.
      '@typescript-eslint/no-import-type-side-effects': 'error',
      // Cross-package imports go through each package's index only.
      'no-restricted-imports': ['error', { patterns: ['@ganfleet/*/src/*', '@ganfleet/*/dist/*', '../../*/src/*'] }],
    },
  },
);
