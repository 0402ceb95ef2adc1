#!/usr/bin/env node
// Entry point of the ferrydiag CLI: hands argv to oclif, which finds the compiled commands in dist/.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
