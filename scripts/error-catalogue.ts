// Prints the error catalogue (lib/error-catalogue.ts) as the Markdown table the README quotes
// between <!-- error-catalogue:start --> and <!-- error-catalogue:end -->:
//   npx tsx scripts/error-catalogue.ts
import { catalogueMarkdown } from '../lib/error-catalogue.js';

process.stdout.write(catalogueMarkdown());
