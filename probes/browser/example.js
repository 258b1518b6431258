// A login journey for vigil's `browser` probe kind (see docs/probes/browser.md).
// vigil runs it in a fresh headless Chromium: `page` is a Playwright Page, `ctx.env` is the
// definition's `env:` map and `ctx.step(name, fn)` names and times a step. A throw fails the run,
// named after the step it happened in; the screenshot and trace of that moment are kept.
export default async (page, ctx) => {
  await ctx.step('open login', async () => {
    await page.goto(`${ctx.env.BASE_URL}/login`);
  });

  await ctx.step('log in', async () => {
    await page.getByLabel('Email').fill(ctx.env.USER);
    // A `${…}` secret: vigil removes it from the trace, the messages and the logs.
    await page.getByLabel('Password').fill(ctx.env.PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Your orders' }).waitFor();
  });

  await ctx.step('load orders', async () => {
    // The page fetches its data: wait for the first row the API filled in.
    await page.locator('#orders li').first().waitFor();
  });
};
