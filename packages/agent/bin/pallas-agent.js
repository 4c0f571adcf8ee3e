#!/usr/bin/env node
// Thin launcher: the program itself is compiled from src/ by `npm run build` (run by `npm ci`).
import '../dist/main.js';
