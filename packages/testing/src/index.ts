export * as TestServer from "./TestServer.ts"
