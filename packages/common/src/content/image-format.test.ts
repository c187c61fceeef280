import { describe, expect, it } from "vitest";
import { imageExtension, sniffImageFormat } from "./image-format.ts";

describe("sniffImageFormat", () => {
  it("names each accepted format by its magic bytes", () => {
    expect(sniffImageFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe("jpeg");
    expect(sniffImageFormat(Buffer.from("\x89PNG\r\n\x1a\n\0\0", "latin1"))).toBe("png");
    expect(sniffImageFormat(Buffer.from("RIFF\0\0\0\0WEBPVP8 ", "latin1"))).toBe("webp");
    expect(sniffImageFormat(Buffer.from("GIF89a", "latin1"))).toBe("gif");
  });

  it("refuses look-alikes and text named like an image", () => {
    expect(sniffImageFormat(Buffer.from("\x89PNG\r\n", "latin1"))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from("GIF8xa", "latin1"))).toBeUndefined();
    expect(sniffImageFormat(Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'/>"))).toBeUndefined();
    expect(sniffImageFormat(Buffer.alloc(0))).toBeUndefined();
  });

  it("stores unknown bytes as .bin", () => {
    expect(imageExtension(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBe("jpg");
    expect(imageExtension(Buffer.from("hello, I am text"))).toBe("bin");
  });
});
