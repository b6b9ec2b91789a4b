import type { TestServerSpec } from "./spec.ts"

const task = (id: string, title: string, status: string, priority: string, assignee: string, due: string) => ({
  id,
  title,
  status,
  priority,
  assignee,
  due
})

const tasks = [
  task("T-101", "Draft Q3 roadmap", "in_progress", "high", "maya", "2026-07-03"),
  task("T-102", "Review Acme contract renewal", "todo", "high", "leo", "2026-07-01"),
  task("T-103", "Fix onboarding email typo", "done", "low", "sam", "2026-06-24"),
  task("T-104", "Prepare board metrics deck", "todo", "medium", "maya", "2026-07-08"),
  task("T-105", "Migrate billing webhooks", "in_progress", "high", "ivan", "2026-07-05"),
  task("T-106", "Interview backend candidate", "todo", "medium", "leo", "2026-06-30"),
  task("T-107", "Close June books", "done", "high", "ana", "2026-06-28")
]

const metrics = {
  date: "2026-06-29",
  revenueUsd: 48210.55,
  newSignups: 137,
  activeUsers: 9421,
  churnedAccounts: 3,
  openTickets: 22,
  meanResponseMinutes: 14.6,
  deploys: 5
}

const clients = {
  clients: [
    { id: "C-01", name: "Acme Robotics", plan: "enterprise", mrrUsd: 12000, health: "green", owner: "leo" },
    { id: "C-02", name: "Northwind Foods", plan: "growth", mrrUsd: 2400, health: "yellow", owner: "maya" },
    { id: "C-03", name: "Globex Logistics", plan: "enterprise", mrrUsd: 9800, health: "green", owner: "ana" },
    { id: "C-04", name: "Initech", plan: "starter", mrrUsd: 300, health: "red", owner: "sam" },
    { id: "C-05", name: "Umbrella Health", plan: "growth", mrrUsd: 3100, health: "green", owner: "ivan" }
  ]
}

export const workos: TestServerSpec = {
  name: "workos",
  version: "1.0.0",
  tools: [
    {
      name: "get_tasks",
      description: "List tasks, optionally filtered by status (todo | in_progress | done)",
      inputSchema: {
        type: "object",
        properties: { status: { type: "string", enum: ["todo", "in_progress", "done"] } }
      },
      annotations: { readOnlyHint: true, title: "Get tasks" },
      latencyMs: 15,
      respond: { kind: "filter", field: "status", items: tasks }
    },
    {
      name: "get_today_metrics",
      description: "Today's business metrics",
      annotations: { readOnlyHint: true, title: "Today's metrics" },
      latencyMs: 10,
      respond: { kind: "json", value: metrics }
    },
    {
      name: "get_clients",
      description: "List client accounts with plan, MRR and health",
      annotations: { readOnlyHint: true, title: "Get clients" },
      latencyMs: 20,
      respond: { kind: "json", value: clients }
    },
    {
      name: "create_task",
      description: "Create a task",
      inputSchema: {
        type: "object",
        properties: {
          title: { type: "string" },
          priority: { type: "string", enum: ["low", "medium", "high"] },
          assignee: { type: "string" },
          due: { type: "string" }
        },
        required: ["title"]
      },
      annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, title: "Create task" },
      latencyMs: 25,
      respond: { kind: "echo" }
    }
  ]
}
