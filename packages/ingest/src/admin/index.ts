export { registerAdmin, ADMIN_KEY_COOKIE, ADMIN_KEY_HEADER, type AdminOptions } from "./register-admin.ts";
