import { describe, expect, it } from 'vitest';
import { html } from './html.ts';

describe('console templates', () => {
  it('escape every interpolated value, so data from a SIEM never becomes markup', () => {
    const title = `<img src=x onerror="alert(1)"> & 'quoted'`;
    expect(html`<td title="${title}">${title}</td>`.value).toBe(
      '<td title="&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &#39;quoted&#39;">&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &#39;quoted&#39;</td>',
    );
  });

  it('pass nested fragments through once, join lists, and drop null, undefined and false', () => {
    const rows = ['a<b', 'c'].map((x) => html`<li>${x}</li>`);
    expect(html`<ul>${rows}</ul>${null}${undefined}${false}${0}`.value).toBe(
      '<ul><li>a&lt;b</li><li>c</li></ul>0',
    );
  });
});
