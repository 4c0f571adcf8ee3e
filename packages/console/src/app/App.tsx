import type { ReactNode } from 'react';
import { useAuth, useCan } from '../auth/AuthProvider.js';
import { ErrorBoundary } from '../components/ErrorBoundary.js';
import { LiveProvider } from '../live/LiveProvider.js';
import { ApiTokensView } from '../views/ApiTokensView.js';
import { ArtifactsView } from '../views/artifacts/ArtifactsView.js';
import { AuditView } from '../views/AuditView.js';
import { DeviceDetailView } from '../views/devices/DeviceDetailView.js';
import { DevicesView } from '../views/devices/DevicesView.js';
import { EnrollmentView } from '../views/EnrollmentView.js';
import { LoginView } from '../views/LoginView.js';
import { OverviewView } from '../views/OverviewView.js';
import { TaskDetailView } from '../views/tasks/TaskDetailView.js';
import { TasksView } from '../views/tasks/TasksView.js';
import { UsersView } from '../views/UsersView.js';
import { GroupsView } from '../views/GroupsView.js';
import { RolloutDetailView } from '../views/rollouts/RolloutDetailView.js';
import { RolloutsView } from '../views/rollouts/RolloutsView.js';
import { pageTitle, useSectionTitle } from '../hooks/useDocumentTitle.js';
import { NAV } from './nav.js';
import { matchPath, useLocation } from './router.js';
import { Shell } from './Shell.js';

function NotFound({ what }: { what: string }) {
  return (
    <div className="panel">
      <h1>Not here</h1>
      <p className="muted">{what}</p>
    </div>
  );
}

/** The section a path belongs to, for the page title ("Device · Devices · Pallas" is refined by the view). */
function sectionTitle(path: string): string {
  const section = path === '/' ? NAV[0] : NAV.find((n) => n.to !== '/' && (path === n.to || path.startsWith(`${n.to}/`)));
  if (!section) return pageTitle('Not found');
  if (path.startsWith('/devices/')) return pageTitle('Device', section.label);
  if (path.startsWith('/tasks/')) return pageTitle('Task', section.label);
  if (path.startsWith('/rollouts/')) return pageTitle('Rollout', section.label);
  return pageTitle(section.label);
}

function Routes() {
  const { path } = useLocation();
  useSectionTitle(sectionTitle(path));
  const operator = useCan('operator');
  const admin = useCan('admin');
  let view: ReactNode;
  let params: Record<string, string> | null;
  if (path === '/') view = <OverviewView />;
  else if (path === '/devices') view = <DevicesView />;
  else if ((params = matchPath('/devices/:id', path))) view = <DeviceDetailView key={params.id} deviceId={params.id!} />;
  else if (path === '/tasks') view = <TasksView />;
  else if ((params = matchPath('/tasks/:id', path))) view = <TaskDetailView key={params.id} taskId={params.id!} />;
  else if (path === '/groups') view = <GroupsView />;
  else if (path === '/rollouts') view = <RolloutsView />;
  else if ((params = matchPath('/rollouts/:id', path))) view = <RolloutDetailView key={params.id} rolloutId={params.id!} />;
  else if (path === '/enrollment') view = operator ? <EnrollmentView /> : <NotFound what="Enrollment tokens need the operator role." />;
  else if (path === '/artifacts') view = <ArtifactsView />;
  else if (path === '/audit') view = admin ? <AuditView /> : <NotFound what="The audit log needs the admin role." />;
  else if (path === '/api-tokens') view = <ApiTokensView />;
  else if (path === '/users') view = admin ? <UsersView /> : <NotFound what="User administration needs the admin role." />;
  else view = <NotFound what={`There is no page at ${path}.`} />;
  return <ErrorBoundary resetKey={path}>{view}</ErrorBoundary>;
}

export function App() {
  const { user, checking, expire } = useAuth();
  if (checking) return <main className="login-page" aria-busy="true"><p className="muted">Checking your session…</p></main>;
  if (!user) return <LoginView />; // (which sets its own title)
  return (
    // Keyed by user: a different login starts a fresh stream and fresh views.
    <LiveProvider key={user.id} onUnauthorized={() => expire('Your session has ended. Log in again.')}>
      <Shell>
        <Routes />
      </Shell>
    </LiveProvider>
  );
}
