/**
 * Errors a user can act on: bad input files, bad options, impossible configurations.
 * The message is one line and names the file, field or line at fault. The CLI prints
 * it without a stack trace and exits non-zero; the API turns it into an error event.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(message: string) {
    super(message.replace(/\s*\n\s*/g, ' '));
  }
}

/** `file: message` — the shape every input error takes. */
export function fileError(file: string, message: string): UserError {
  return new UserError(`${file}: ${message}`);
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
