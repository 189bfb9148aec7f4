"""Developer tools: DynamoDB Local, table creation, the local runner and command-line entry points."""
