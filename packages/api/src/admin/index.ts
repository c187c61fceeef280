export { registerAdmin, ADMIN_KEY_COOKIE, ADMIN_KEY_HEADER, type AdminOptions } from "./register-admin.ts";
export { AdminEnv } from "./admin-env.ts";
export { startAdminServer } from "./admin-server.ts";
