/**
 * A mistake in what the user gave us (bad file, bad flag, unsupported model).
 * The CLI prints its message without a stack trace and exits with status 2;
 * any other error is a bug in phaselens and is printed with its stack.
 */
export class UserError extends Error {
  override name = 'UserError';
}
