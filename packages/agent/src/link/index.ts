export { Link, type LinkOptions, type LinkEvents } from './link.js';
