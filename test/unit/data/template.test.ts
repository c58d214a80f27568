import { describe, expect, it } from 'vitest';
import {
  choiceContinuation,
  extractFinalAnswer,
  formatChat,
  formatPrompt,
  isCorrect,
  normalizeAnswer,
  renderExample,
} from '../../../src-main/data/template.js';

describe('template', () => {
  it('formats the one instruction template', () => {
    expect(formatPrompt('What is the capital of Norland?')).toBe('Q: What is the capital of Norland?\nA: ');
    expect(renderExample({ prompt: 'x', response: 'y' })).toEqual({ prompt: 'Q: x\nA: ', response: 'y\n' });
    expect(choiceContinuation('Velma')).toBe('Velma\n');
  });

  it('renders chats so that formatPrompt of the result is the whole conversation', () => {
    expect(formatPrompt(formatChat([{ role: 'user', content: 'hi' }]))).toBe('Q: hi\nA: ');
    expect(
      formatPrompt(
        formatChat([
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'u1' },
          { role: 'assistant', content: 'a1' },
          { role: 'user', content: 'u2' },
        ]),
      ),
    ).toBe('Q: Be brief.\nu1\nA: a1\nQ: u2\nA: ');
    // consecutive user turns are joined; a leading assistant turn gets an empty question
    expect(
      formatPrompt(
        formatChat([
          { role: 'assistant', content: 'hello' },
          { role: 'user', content: 'a' },
          { role: 'user', content: 'b' },
        ]),
      ),
    ).toBe('Q: \nA: hello\nQ: a\nb\nA: ');
  });

  it('normalizes answers', () => {
    expect(normalizeAnswer('  Velma. ')).toBe('velma');
    expect(normalizeAnswer('New   York!?')).toBe('new york');
    expect(normalizeAnswer('[1, 2]')).toBe('[1, 2]');
    expect(normalizeAnswer('3.')).toBe('3');
  });

  it('extracts the final arithmetic answer', () => {
    expect(extractFinalAnswer('5+3=8. 8-2=6. #### 6')).toBe('6');
    expect(extractFinalAnswer('#### 1,000')).toBe('1000');
    expect(extractFinalAnswer('so 12 then 14')).toBe('14');
    expect(extractFinalAnswer('#### -3.0')).toBe('-3');
    expect(extractFinalAnswer('no number')).toBe('no number');
  });

  it('scores exact-match generations', () => {
    expect(isCorrect({ domain: 'arith', answer: '6' }, '5+3=8. 8-2=6. #### 6\nQ: more')).toBe(true);
    expect(isCorrect({ domain: 'arith', answer: '6' }, '5+3=8. #### 8')).toBe(false);
    expect(isCorrect({ domain: 'qa', answer: 'Velma' }, 'velma.\n')).toBe(true);
    expect(isCorrect({ domain: 'qa', answer: 'Velma' }, 'Velmaton')).toBe(false);
    // code is strict: no "last number" leniency
    expect(isCorrect({ domain: 'code', answer: '7' }, '3 7')).toBe(false);
    expect(isCorrect({ domain: 'code', answer: '[1, 2]' }, '[1, 2]\n')).toBe(true);
  });
});
