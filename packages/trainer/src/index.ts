export async function main(): Promise<void> {
  throw new Error("this role is not built yet");
}
