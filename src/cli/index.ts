export { newToken, tokenText } from './token.js';
